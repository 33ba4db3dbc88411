"""Who may build A/B tests: the roles of mailer 0008 get the new permissions. Starting a
test and sending its winner need `send_campaign`, as starting a campaign does."""

from django.db import migrations

BUILD = ["add_abtest", "change_abtest", "view_abtest", "delete_abtest"]
BUILD += ["add_variant", "change_variant", "view_variant", "delete_variant"]
GRANTS = {
    "Admin": BUILD,
    "Campaign manager": BUILD,
    "Editor": BUILD,
    "Analyst": ["view_abtest", "view_variant"],
}


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    config = apps.get_app_config("campaigns")
    models_module = getattr(config, "models_module", None)
    config.models_module = models_module or True
    create_permissions(config, verbosity=0)
    config.models_module = models_module
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for name, codenames in GRANTS.items():
        group = group_model.objects.filter(name=name).first()
        if group is None:
            continue
        group.permissions.add(
            *permission_model.objects.filter(
                content_type__app_label="campaigns", codename__in=codenames
            )
        )


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0018_alter_campaign_kind_abtest_variant"),
        ("mailer", "0008_roles"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
