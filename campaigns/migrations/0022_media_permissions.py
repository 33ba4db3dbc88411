"""Who may use the media library: the roles of mailer 0008 get the new permissions (an
Editor uploads and picks, a campaign manager and Admin also delete, an Analyst looks)."""

from django.db import migrations

USE = ["add_media", "change_media", "view_media"]
GRANTS = {
    "Admin": [*USE, "delete_media"],
    "Campaign manager": [*USE, "delete_media"],
    "Editor": USE,
    "Analyst": ["view_media"],
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
        ("campaigns", "0021_media_library"),
        ("mailer", "0008_roles"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
