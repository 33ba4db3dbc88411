"""Who may build and run sequences: the roles of mailer 0008 get the new permissions. A
Campaign manager builds and runs them (activate, pause, resume), an Editor builds them and
writes their messages, an Analyst reads them and their reports; the Admin has all."""

from django.db import migrations

BUILD = ["add_sequence", "change_sequence", "view_sequence", "delete_sequence"]
BUILD += ["add_step", "change_step", "view_step", "delete_step", "view_enrollment"]
GRANTS = {
    "Admin": [*BUILD, "run_sequence", "record_event"],
    "Campaign manager": [*BUILD, "run_sequence", "record_event"],
    "Editor": BUILD,
    "Analyst": ["view_sequence", "view_step", "view_enrollment"],
}


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    config = apps.get_app_config("automations")
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
                content_type__app_label="automations", codename__in=codenames
            )
        )


class Migration(migrations.Migration):
    dependencies = [("automations", "0001_initial"), ("mailer", "0008_roles")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
