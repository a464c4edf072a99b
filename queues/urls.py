from django.urls import path

from queues import views

app_name = "queues"

urlpatterns = [
    path("", views.check_in, name="check_in"),
    path("people/", views.person_matches, name="person_matches"),
    path("board/", views.board, name="board"),
    path("board/live/", views.board_live, name="board_live"),
    path("room/", views.set_room, name="set_room"),
    path("call-next/", views.call_next, name="call_next"),
    path("close-day/", views.close_day, name="close_day"),
    path("arrivals/<int:pk>/handoff/", views.hand_off, name="hand_off"),
    path("arrivals/<int:pk>/<slug:action>/", views.arrival_action, name="arrival_action"),
    path("display/<str:token>/", views.display, name="display"),
    path("display/<str:token>/live/", views.display_live, name="display_live"),
]
