"""Sessions and live sockets end at once: on signing out, on "sign out everywhere", and when
someone's password changes."""

import pytest
from channels.db import database_sync_to_async
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from clinic.accounts import sessions_end
from clinic.models import StaffSession
from queues.consumers import CLOSE_SESSION_ENDED
from tests.queues.test_consumers import (
    board_path,
    closed_with,
    connected,
    layer,  # noqa: F401  (fixture)
    run,
    socket,
)

PASSWORD = "a long enough pass phrase 7"


def signed_in_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def socket_headers(client) -> list[tuple[bytes, bytes]]:
    cookie = client.cookies["sessionid"].value
    return [
        (b"origin", b"http://127.0.0.1"),
        (b"host", b"127.0.0.1"),
        (b"cookie", f"sessionid={cookie}".encode()),
    ]


@pytest.mark.django_db
def test_every_sign_in_is_tracked_and_signing_out_forgets_it(clinician):
    client = signed_in_client(clinician)
    key = client.session.session_key
    assert StaffSession.objects.filter(user=clinician, session_key=key).exists()
    client.post(reverse("logout"))
    assert not StaffSession.objects.filter(session_key=key).exists()
    assert not Session.objects.filter(session_key=key).exists()


@pytest.mark.django_db
def test_sessions_end_signs_out_every_device_and_can_keep_one(clinician):
    phone, desk, tablet = (signed_in_client(clinician) for _ in range(3))
    assert sessions_end(user=clinician, keep=desk.session.session_key) == 2
    board = reverse("queues:board")
    assert phone.get(board).status_code == 302
    assert tablet.get(board).status_code == 302
    assert desk.get(board).status_code == 200
    sessions_end(user=clinician)
    assert desk.get(board).status_code == 302
    assert not StaffSession.objects.filter(user=clinician).exists()


@pytest.mark.django_db
def test_sign_out_everywhere_from_the_account_page(clinician):
    here, elsewhere = signed_in_client(clinician), signed_in_client(clinician)
    response = here.post(reverse("account_sign_out_everywhere"))
    assert response.url == reverse("login")
    assert here.get(reverse("queues:board")).status_code == 302
    assert elsewhere.get(reverse("queues:board")).status_code == 302


@pytest.mark.django_db
def test_sign_out_everywhere_needs_a_post(clinician):
    client = signed_in_client(clinician)
    assert client.get(reverse("account_sign_out_everywhere")).status_code == 405
    assert client.get(reverse("queues:board")).status_code == 200


@pytest.mark.django_db
def test_changing_ones_password_signs_out_every_other_device_but_this_one(clinician):
    clinician.set_password(PASSWORD)
    clinician.save()
    here, elsewhere = signed_in_client(clinician), signed_in_client(clinician)
    response = here.post(
        reverse("account_password"),
        {
            "old_password": PASSWORD,
            "new_password1": "another good pass phrase 8",
            "new_password2": "another good pass phrase 8",
        },
    )
    assert response.status_code == 302
    assert here.get(reverse("queues:board")).status_code == 200
    assert elsewhere.get(reverse("queues:board")).status_code == 302
    assert list(
        StaffSession.objects.filter(user=clinician).values_list("session_key", flat=True)
    ) == [here.session.session_key]


@pytest.mark.django_db
def test_a_wrong_old_password_changes_nothing(clinician):
    clinician.set_password(PASSWORD)
    clinician.save()
    here, elsewhere = signed_in_client(clinician), signed_in_client(clinician)
    response = here.post(
        reverse("account_password"),
        {
            "old_password": "nope",
            "new_password1": "x y z 12345 q",
            "new_password2": "x y z 12345 q",
        },
    )
    assert response.status_code == 400
    clinician.refresh_from_db()
    assert clinician.check_password(PASSWORD)
    assert elsewhere.get(reverse("queues:board")).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_signing_out_closes_that_sessions_live_board_at_once(layer, site, clinician):  # noqa: F811
    client = signed_in_client(clinician)
    other = signed_in_client(clinician)

    async def scenario():
        async with (
            socket(board_path(site), socket_headers(client)) as ws,
            socket(board_path(site), socket_headers(other)) as ws_other,
        ):
            await connected(ws)
            await connected(ws_other)
            await database_sync_to_async(client.post)(reverse("logout"))
            assert await closed_with(ws) == CLOSE_SESSION_ENDED
            assert await ws_other.receive_nothing(timeout=0.5)

    run(scenario)


@pytest.mark.django_db(transaction=True)
def test_ending_every_session_closes_every_live_board_of_the_account(
    layer,  # noqa: F811
    site,
    clinician,
    front_desk,
):
    phone, desk = signed_in_client(clinician), signed_in_client(clinician)
    colleague = signed_in_client(front_desk)

    async def scenario():
        async with (
            socket(board_path(site), socket_headers(phone)) as ws_phone,
            socket(board_path(site), socket_headers(desk)) as ws_desk,
            socket(board_path(site), socket_headers(colleague)) as ws_colleague,
        ):
            for ws in (ws_phone, ws_desk, ws_colleague):
                await connected(ws)
            await database_sync_to_async(sessions_end)(user=clinician)
            assert await closed_with(ws_phone) == CLOSE_SESSION_ENDED
            assert await closed_with(ws_desk) == CLOSE_SESSION_ENDED
            assert await ws_colleague.receive_nothing(timeout=0.5)

    run(scenario)
