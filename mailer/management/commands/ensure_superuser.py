from __future__ import annotations

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Create an admin user with the password in DJANGO_SUPERUSER_PASSWORD, unless a user "
        "of that name exists already (its password is then left alone)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--email", default="admin@localhost")

    def handle(self, *args, username: str, email: str, **options) -> None:
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            self.stdout.write(f"Admin user {username!r} exists already.")
            return
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        if not password:
            raise CommandError(
                "DJANGO_SUPERUSER_PASSWORD is not set; set it to the new admin's password."
            )
        User.objects.create_superuser(username=username, email=email, password=password)
        self.stdout.write(f"Created admin user {username!r}.")
