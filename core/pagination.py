from rest_framework.pagination import PageNumberPagination


class _PkPage(list):
    """The rows of a page, fetched by primary key in the page's order."""


class Pagination(PageNumberPagination):
    """Page numbers, with the page's rows fetched in two steps.

    A deep page (OFFSET 5000 among 10,000 versions) makes the database sort and skip every row
    before it; sorting only the primary keys keeps that cheap, and the full rows (wide JSON
    columns, prefetches) are then read for the page alone. The number of queries stays
    constant: count, page of keys, rows, and one per prefetch.
    """

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def paginate_queryset(self, queryset, request, view=None):
        keys = queryset.values_list("pk", flat=True)
        page_keys = super().paginate_queryset(keys, request, view)
        if page_keys is None:
            return None
        page_keys = list(page_keys)
        rows = {row.pk: row for row in queryset.order_by().filter(pk__in=page_keys)}
        return [rows[pk] for pk in page_keys if pk in rows]
