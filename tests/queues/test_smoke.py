from django.urls import reverse

from tests.factories import check_in


def test_board_shows_a_checked_in_person_to_the_clinician(client, site, clinician, front_desk):
    check_in(site=site, by=front_desk, name="Marcus")
    client.force_login(clinician)
    response = client.get(reverse("queues:board"))
    assert response.status_code == 200
    assert "Marcus" in response.content.decode()
