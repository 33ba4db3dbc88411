from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from api.tokens import ApiUserError, api_user_create


class Command(BaseCommand):
    help = (
        "Make an API user with a role (and the lists it may use); prints its token alone on "
        "the last line, for provisioning scripts. The token is not shown again."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="the user name the token is sent with")
        parser.add_argument("--role", required=True, help='a role, e.g. "Subscriber manager"')
        parser.add_argument(
            "--list",
            type=int,
            action="append",
            default=[],
            dest="lists",
            metavar="ID",
            help="a list it may use (repeat for more); none: what its role sees",
        )

    def handle(self, *args, name: str, role: str, lists: list[int], **options) -> None:
        try:
            user, secret = api_user_create(name=name, role=role, list_ids=lists)
        except ApiUserError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"API user {user.get_username()} ({role}) made. Send its token as "
            f"`Authorization: token {user.get_username()}:TOKEN`:"
        )
        self.stdout.write(secret)
