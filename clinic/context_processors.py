from clinic import sites


def current_site(request):
    """The site the page is for, the user's other sites and `perms`: the permissions their
    roles at that site grant (it replaces Django's global `perms` in every template)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    site = getattr(request, "site", None) or sites.current_site(request)
    return {
        "current_site": site,
        "my_sites": sites.user_sites(user),
        "perms": sites.SitePerms(sites.site_perms(user, site)),
    }
