"""The Admin role gets the webhooks' permissions (its "*" of mailer 0008 was taken before
these models existed); the other roles get none: endpoints hold signing secrets and decide
where subscriber data goes."""

from django.db import migrations


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    config = apps.get_app_config("webhooks")
    models_module = getattr(config, "models_module", None)
    config.models_module = models_module or True
    create_permissions(config, verbosity=0)
    config.models_module = models_module
    group = apps.get_model("auth", "Group").objects.filter(name="Admin").first()
    if group is not None:
        permissions = apps.get_model("auth", "Permission").objects.filter(
            content_type__app_label="webhooks"
        )
        group.permissions.add(*permissions)


class Migration(migrations.Migration):
    dependencies = [("webhooks", "0001_initial"), ("mailer", "0008_roles")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
