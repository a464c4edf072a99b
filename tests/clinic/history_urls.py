"""Views for the history-of-changes tests: one that changes a person and then fails."""

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from clinic.models import Person


@csrf_exempt
def change(request, pk):
    Person.objects.filter(pk=pk).update(name="Changed")
    return HttpResponse("ok")


@csrf_exempt
def change_then_fail(request, pk):
    Person.objects.filter(pk=pk).update(name="Changed by a failing request")
    raise RuntimeError("the view failed after its change")


urlpatterns = [
    path("change/<int:pk>/", change),
    path("change-then-fail/<int:pk>/", change_then_fail),
]
