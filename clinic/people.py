"""Whose records are whose once two records of one person were merged (clinic.PersonMerge).

A merge moves what may change to the kept record; what may not (the access log, disclosures,
emergency releases, the history of changes, signed consents) stays with the merged record.
Every read that gathers a person's records therefore asks for the person and every record
merged into theirs: `with_merged`.
"""

from clinic.models import Person


def with_merged(person: Person) -> list[int]:
    """The person's id, then the ids of every record merged into theirs, directly or through a
    record that was itself merged into theirs later. One query per level (merges are rare)."""
    ids, level = [person.pk], [person.pk]
    while level:
        level = [
            pk
            for pk in Person.objects.filter(merged_into_id__in=level).values_list("pk", flat=True)
            if pk not in ids  # never loops, even if the database held a cycle
        ]
        ids += level
    return ids
