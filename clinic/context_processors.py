from clinic import sites


def current_site(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "current_site": getattr(request, "site", None) or sites.current_site(request),
        "my_sites": sites.user_sites(user),
    }
