from django.urls import path

from queues import consumers

websocket_urlpatterns = [
    path("ws/queue/<slug:site>/", consumers.BoardConsumer.as_asgi()),
    path("ws/display/<str:token>/", consumers.DisplayConsumer.as_asgi()),
]
