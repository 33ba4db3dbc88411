from __future__ import annotations

import os

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from settings.environment import PLACEHOLDER


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
        candidate = User(username=username, email=email)
        try:
            if PLACEHOLDER in password.lower():
                raise ValidationError("it is the placeholder of .env.example")
            validate_password(password, user=candidate)
        except ValidationError as error:
            raise CommandError(
                f"DJANGO_SUPERUSER_PASSWORD will not do for the admin: {' '.join(error.messages)} "
                "Set it to a long random password (python -c 'import secrets; "
                "print(secrets.token_urlsafe(16))') and run this again."
            ) from error
        User.objects.create_superuser(username=username, email=email, password=password)
        self.stdout.write(f"Created admin user {username!r}.")
