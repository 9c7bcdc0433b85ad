from django.urls import path

from dashboards import views

app_name = "dashboards"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("phasors/", views.phasors, name="phasors"),
    path("pmus/", views.pmu_list, name="pmus"),
    path("pmus/<int:pmu_id>/", views.pmu_detail, name="pmu"),
    path("substations/<int:substation_id>/", views.substation_detail, name="substation"),
    path("events/", views.event_list, name="events"),
    path("events/<int:event_id>/", views.event_detail, name="event"),
    path("events/<int:event_id>/acknowledge/", views.acknowledge, name="acknowledge"),
    path("incidents/", views.incident_list, name="incidents"),
    path("incidents/<int:incident_id>/", views.incident_detail, name="incident"),
    path("incidents/<int:incident_id>/acknowledge/", views.incident_acknowledge, name="incident_acknowledge"),
    path("incidents/<int:incident_id>/shelve/", views.incident_shelve, name="incident_shelve"),
    path("scenarios/", views.scenarios, name="scenarios"),
    path("history/", views.history, name="history"),
    path("history/export/", views.history_export, name="history_export"),
]
