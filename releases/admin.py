"""Nothing of the consent gate is in the admin.

Recipients, consents and the disclosure log hold people's names and what was released about
them. They are kept by the privacy officer of each site on the privacy pages, which check the
role at that site, log every read and go through the gate's services; the admin would be a
way around all three (and a superuser holds no role). Do not register them here.
"""
