from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class WorkbenchConfig(AppConfig):
    """The marketer's workbench: the admin's home page, analytics and look."""

    name = "workbench"
    verbose_name = "Workbench"
    default = True


class WorkbenchAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin, with the workbench's site as the default `admin.site`."""

    default = False
    default_site = "workbench.site.WorkbenchSite"
