"""Who may read what the bounce mailbox read: Admin (and apply what it could not tie to a
message by hand), a campaign manager reads it. Users limited to some lists never see it."""

from django.db import migrations

GRANTS = {
    "Admin": ["view_mailboxreport", "delete_mailboxreport", "add_bounce"],
    "Campaign manager": ["view_mailboxreport"],
}


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    config = apps.get_app_config("mailer")
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
                content_type__app_label="mailer", codename__in=codenames
            )
        )


class Migration(migrations.Migration):
    dependencies = [("mailer", "0014_bounce_mailbox")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
