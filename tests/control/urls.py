"""The project's URLs with the control pages mounted at /control/ (as the project mounts them)."""

from django.urls import URLPattern, URLResolver, include, path

from wams.urls import urlpatterns as project_urlpatterns

mounted = any(getattr(p, "namespace", None) == "control" for p in project_urlpatterns)
urlpatterns: list[URLPattern | URLResolver] = list(project_urlpatterns)
if not mounted:
    urlpatterns.insert(0, path("control/", include("wams.control.urls")))
