"""The model card in the admin: on a version's page, its sections with links to the card
(HTML page and PDF) and, for the team's data scientists, approvers and admins, an "Edit model
card" form that calls the same service as the API (registry.services.version_card_update).

Compliance extends whichever version admin is registered (governance's), as governance
extends the registry's."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from compliance import cards
from core.errors import ApplicationError
from core.pdf import PdfUnavailable
from registry import cards as sections
from registry import services
from registry.models import ModelVersion


class ModelCardForm(forms.Form):
    """The six sections; an empty one is cleared."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for key in sections.SECTIONS:
            self.fields[key] = forms.CharField(
                label=sections.TITLES[key], required=False, strip=True,
                max_length=sections.MAX_SECTION_CHARS,
                widget=forms.Textarea(attrs={"rows": 4, "cols": 90}))


def card_admin_urls(version: ModelVersion) -> dict:
    card = reverse("admin:registry_modelversion_card", args=[version.pk])
    return {"card": card, "pdf": f"{card}?output=pdf",
            "edit": reverse("admin:registry_modelversion_card_edit", args=[version.pk]),
            "markdown": reverse("api:version-card", kwargs={
                "name": version.model.name, "version": version.version}) + "?output=md"}


_Base = type(admin.site._registry[ModelVersion])


class CardModelVersionAdmin(_Base):
    fieldsets = [*_Base.fieldsets, ("Model card sections", {"fields": ["card_display"]}),
                 ("Periodic review", {"fields": ["review_display"]})]
    readonly_fields = [*_Base.readonly_fields, "card_display", "review_display"]

    @admin.display(description="review")
    def review_display(self, obj):
        """The next review date (red once past) and the reviews recorded, newest first."""
        from django.utils import timezone

        if obj.review_due_at is None:
            due = format_html("{}", "no review date (set while the version is in production)")
        elif obj.review_due_at < timezone.now():
            due = format_html('<strong style="color:#ba2121">next review {}: OVERDUE</strong>',
                              f"{timezone.localtime(obj.review_due_at):%Y-%m-%d}")
        else:
            due = format_html("next review {}", f"{timezone.localtime(obj.review_due_at):%Y-%m-%d}")
        reviews = format_html_join("", "<li>{} by {}: {}</li>", (
            (f"{timezone.localtime(review.created_at):%Y-%m-%d %H:%M}",
             review.reviewer.get_username(), review.comment)
            for review in obj.reviews.select_related("reviewer")[:20]))
        link = format_html('<a href="{}">inventory</a>', reverse("admin:compliance_inventory"))
        return format_html("<p>{} ({})</p><ul>{}</ul>", due, link,
                           reviews or format_html("<li>{}</li>", "no review recorded yet"))

    @admin.display(description="model card")
    def card_display(self, obj):
        card, urls = obj.model_card or {}, card_admin_urls(obj)
        # The edit link is for everyone who may see the page: the form refuses, with a
        # message, who may not edit (a field of the page cannot see the request).
        links = [format_html('<a class="button" href="{}">Edit model card</a>', urls["edit"]),
                 format_html('<a class="button" href="{}">Model card (HTML)</a>', urls["card"]),
                 format_html('<a class="button" href="{}">PDF</a>', urls["pdf"]),
                 format_html('<a href="{}">Markdown</a>', urls["markdown"])]
        rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", (
            (sections.TITLES[key], card.get(key) or "—") for key in sections.SECTIONS))
        return format_html('<p class="card-links">{}</p><table><tbody>{}</tbody></table>',
                           format_html_join(" ", "{}", ((link,) for link in links)), rows)

    def get_urls(self):
        return [
            path("<path:object_id>/card/", self.admin_site.admin_view(self.card_view),
                 name="registry_modelversion_card"),
            path("<path:object_id>/card/edit/", self.admin_site.admin_view(self.card_edit_view),
                 name="registry_modelversion_card_edit"),
            *super().get_urls(),
        ]

    def _version(self, request, object_id) -> ModelVersion:
        # get_queryset is team-scoped: another team's version is a 404 here too.
        version = self.get_object(request, object_id)
        if version is None or not self.has_view_permission(request, version):
            raise Http404("no such version")
        return version

    def card_view(self, request, object_id):
        version = self._version(request, object_id)
        document = cards.card_document(version)
        if request.GET.get("output") == "pdf":
            try:
                return cards.card_pdf(document, viewer=request.user.get_username())
            except PdfUnavailable as exc:  # the card's page still answers
                self.message_user(request, exc.message, level=messages.ERROR)
        context = {**self.admin_site.each_context(request), "opts": self.model._meta,
                   "title": f"Model card: {version}", "version": version, "card": document,
                   "urls": card_admin_urls(version),
                   "may_edit": cards.may_edit(request.user, version)}
        return TemplateResponse(request, "compliance/card_admin.html", context)

    def card_edit_view(self, request, object_id):
        version = self._version(request, object_id)
        change_url = reverse("admin:registry_modelversion_change", args=[version.pk])
        if not cards.may_edit(request.user, version):
            self.message_user(request, "Your role or team may not change this model card.",
                              messages.ERROR)
            return HttpResponseRedirect(change_url)
        if request.method == "POST":
            form = ModelCardForm(request.POST)
            if form.is_valid():
                try:
                    services.version_card_update(version=version, actor=request.user,
                                                 sections=form.cleaned_data)
                except ApplicationError as exc:
                    form.add_error(exc.field if exc.field in form.fields else None,
                                   exc.message)
                else:
                    self.message_user(request, f"The model card of {version} was saved.",
                                      messages.SUCCESS)
                    return HttpResponseRedirect(change_url)
        else:
            form = ModelCardForm(initial=version.model_card or {})
        context = {**self.admin_site.each_context(request), "opts": self.model._meta,
                   "title": f"Edit model card: {version}", "version": version, "form": form,
                   "change_url": change_url, "urls": card_admin_urls(version)}
        return TemplateResponse(request, "compliance/card_edit.html", context)


admin.site.unregister(ModelVersion)
admin.site.register(ModelVersion, CardModelVersionAdmin)
