"""Who may send and read transactional messages: the roles of 0008 get the new permissions
(Admin all of them, a campaign manager sends and reads, an analyst reads)."""

from django.db import migrations

GRANTS = {
    "Admin": ["add_txmessage", "view_txmessage", "change_txmessage", "delete_txmessage"],
    "Campaign manager": ["add_txmessage", "view_txmessage"],
    "Analyst": ["view_txmessage"],
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
    dependencies = [("mailer", "0011_transactional")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
