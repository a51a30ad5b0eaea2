"""What every app shares and no domain owns: errors and the API's error handler, roles and
permissions, pagination, filters, parsers and limits, request context, admin helpers, and
the audit trail. It imports no app."""
