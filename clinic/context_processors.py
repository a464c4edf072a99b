from clinic import sites


def current_site(request):
    """The site the page is for, the user's other sites and `perms`: the permissions their
    roles at that site grant (it replaces Django's global `perms` in every template)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    # A view behind site_permission_required has asked already: no query again.
    site = getattr(request, "site", None) or sites.current_site(request)
    my_sites = getattr(request, "user_sites", None)
    return {
        "current_site": site,
        "my_sites": sites.user_sites(user) if my_sites is None else my_sites,
        "perms": sites.SitePerms(
            sites.request_site_perms(request)
            if getattr(request, "site", None) is not None
            else sites.site_perms(user, site)
        ),
    }
