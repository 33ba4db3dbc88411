from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class WorkbenchConfig(AppConfig):
    """The marketer's workbench: the admin's home page, analytics and look."""

    name = "workbench"
    verbose_name = "Workbench"
    default = True


class WorkbenchAdminConfig(admin_apps.SimpleAdminConfig):
    """django.contrib.admin, with the workbench's site as the default `admin.site`. The apps'
    admin modules are found by settings/urls.py (admin.autodiscover), so only the processes
    that serve pages load them: a sender worker does not carry the admin, its editor and
    charts (about 30 MB a process)."""

    default = False
    default_site = "workbench.site.WorkbenchSite"
