"""The roles a team is given (docs/roles.md), as groups with their permissions. A user gets a
role by being put in its group; superusers have every permission anyway.

Permissions are normally created after all migrations ran; they are created here first, so
that the groups get them on a fresh database too. Running this again (or after new models
came) only adds what is missing; a role edited in the admin keeps its additions.
"""

from django.db import migrations

VIEW_ALL = [
    "campaigns.view_campaign",
    "campaigns.view_template",
    "campaigns.view_condition",
    "subscribers.view_mailinglist",
    "mailer.view_delivery",
    "mailer.view_bounce",
]

ROLES: dict[str, list[str]] = {
    # Everything the project has, users and groups included.
    "Admin": ["*"],
    "Campaign manager": [
        *VIEW_ALL,
        "campaigns.add_campaign",
        "campaigns.change_campaign",
        "campaigns.delete_campaign",
        "campaigns.send_campaign",
        "campaigns.add_template",
        "campaigns.change_template",
        "campaigns.add_condition",
        "campaigns.change_condition",
        "campaigns.delete_condition",
        "subscribers.view_subscriber",
        "mailer.view_smtpserver",
        "mailer.view_domainthrottle",
        "mailer.view_performancesettings",
    ],
    # Content, preview and test sends; never starts, pauses or cancels a campaign.
    "Editor": [
        *VIEW_ALL,
        "campaigns.add_campaign",
        "campaigns.change_campaign",
        "campaigns.add_template",
        "campaigns.change_template",
        "campaigns.add_condition",
        "campaigns.change_condition",
        "campaigns.delete_condition",
    ],
    # Reports and read-only views.
    "Analyst": [
        *VIEW_ALL,
        "subscribers.view_subscription",
        "subscribers.view_subscriberimport",
        "mailer.view_domainthrottle",
    ],
    # Import, export, blocklist and erase subscribers; no campaigns.
    "Subscriber manager": [
        "subscribers.add_subscriber",
        "subscribers.change_subscriber",
        "subscribers.delete_subscriber",
        "subscribers.view_subscriber",
        "subscribers.add_mailinglist",
        "subscribers.change_mailinglist",
        "subscribers.view_mailinglist",
        "subscribers.view_subscription",
        "subscribers.change_subscription",
        "subscribers.add_subscriberimport",
        "subscribers.view_subscriberimport",
        "mailer.view_bounce",
    ],
}


def create_roles(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        # Historical app configs have no models module, which create_permissions skips.
        models_module = getattr(app_config, "models_module", None)
        app_config.models_module = models_module or True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = models_module
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for name, codes in ROLES.items():
        group, _ = group_model.objects.get_or_create(name=name)
        if codes == ["*"]:
            group.permissions.add(*permission_model.objects.all())
            continue
        for code in codes:
            app_label, codename = code.split(".")
            permission = permission_model.objects.get(
                content_type__app_label=app_label, codename=codename
            )
            group.permissions.add(permission)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("campaigns", "0010_send_permission"),
        ("subscribers", "0003_list_permissions"),
        ("mailer", "0007_smtp_password_variable"),
        ("auditlog", "0017_add_actor_email"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
