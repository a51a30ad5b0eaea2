"""What the demo's inventory and model cards say about each model: its risk tier (and why),
its business use, and the sections of its model card. Applied by `seed_demo` through the
same services an approver and a data scientist use."""

from __future__ import annotations

INVENTORY = {
    # name: (risk tier, why, business use)
    "overdue_prediction": (
        "high", "Decides which members get reminder calls and loan limits: a wrong answer "
        "restricts a member's access to the library.",
        "Loan desk: flags loans likely to come back late so staff can remind members early."),
    "churn_prediction": (
        "medium", "Targets retention offers; a miss costs an offer, not a member's rights.",
        "Membership team: picks members for win-back e-mails and offers."),
    "recommendation_engine": (
        "low", "Suggests books; members see other suggestions and the catalogue anyway.",
        "Website and app: 'you may also like' lists."),
    "member_segmentation": (
        "low", "Groups members for reporting; no decision about a member is made from it.",
        "Marketing and reporting: member segments for campaigns and dashboards."),
    "demand_forecasting": (
        "medium", "Drives how many copies branches order; errors cost money, not rights.",
        "Acquisitions: weekly copy orders per branch."),
}

CARDS = {
    "overdue_prediction": {
        "intended_use": "Rank this week's loans by the chance they come back late, so that "
                        "staff send reminders to the top of the list.",
        "out_of_scope_uses": "Refusing loans, setting fines or judging a member's "
                             "trustworthiness.",
        "training_data": "Synthetic loan history of 4,000 loans (member history, book "
                         "popularity, loan terms, season), seeded for reproducibility.",
        "evaluation_data": "A held-out quarter of the loans (1,000 rows), with the "
                           "returned_late label; measured by validation in the sandbox.",
        "limitations": "Members with little history get scores close to the base rate. "
                       "Seasonal effects were learnt from one synthetic year.",
        "ethical_considerations": "Reminders must not become penalties; scores are not shown "
                                  "to members. Review for disparate impact before any use "
                                  "beyond reminders.",
    },
    "churn_prediction": {
        "intended_use": "Choose members for retention offers.",
        "out_of_scope_uses": "Closing memberships or changing fees.",
        "training_data": "Synthetic visit and loan history of 4,000 members.",
        "evaluation_data": "A held-out quarter (1,000 members) with the churned label.",
        "limitations": "New members (under 3 months) are under-represented.",
        "ethical_considerations": "Offers go to those scored at risk; members not scored "
                                  "keep every service.",
    },
}
