from reports import views

app_name = "reports"

urlpatterns = [*views.urlpatterns]
