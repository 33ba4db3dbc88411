"""API users are made in the admin by staff who may add them. Whoever makes one must not hand
it more than they have: a role they are not in, or lists they cannot see, would let a
low-privilege staff user mint an Admin token (written to reproduce that, before the fix)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission, User
from guardian.shortcuts import assign_perm

from api.models import ApiToken
from subscribers import access
from tests.factories import MailingListFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("roles")]

ADD = "/admin/api/apitoken/add/"


def subscriber_manager_who_may_add_api_users(client):
    user = User.objects.create_user("manager", "m@shop.example", is_staff=True)
    user.groups.add(Group.objects.get(name="Subscriber manager"))
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["add_apitoken", "view_apitoken"])
    )
    client.force_login(user)
    return user


def test_a_staff_user_cannot_mint_an_api_user_in_a_role_they_are_not_in(client):
    subscriber_manager_who_may_add_api_users(client)
    client.post(ADD, {"name": "escalated", "role": "Admin"})
    assert not User.objects.filter(username="escalated").exists()
    assert not ApiToken.objects.exists()


def test_nor_one_for_lists_they_cannot_see(client):
    user = subscriber_manager_who_may_add_api_users(client)
    mine, hidden = MailingListFactory(), MailingListFactory()
    assign_perm(access.VIEW, user, mine)
    client.post(ADD, {"name": "peeker", "role": "Subscriber manager", "lists": [hidden.pk]})
    assert not User.objects.filter(username="peeker").exists()


def test_within_their_own_role_and_lists_they_may(client):
    user = subscriber_manager_who_may_add_api_users(client)
    mine = MailingListFactory()
    assign_perm(access.VIEW, user, mine)
    client.post(ADD, {"name": "shop", "role": "Subscriber manager", "lists": [mine.pk]})
    made = User.objects.get(username="shop")
    assert list(made.groups.values_list("name", flat=True)) == ["Subscriber manager"]
    assert list(access.lists_for(made)) == [mine]
