"""A tiny in-memory stand-in for the ORM models chapter 4 uses (``superapp.models``).

It offers just the calls the example makes, in the style of Django's ORM:
``User.objects.filter(id=...).first()`` and ``Message.objects.create(...)``. A real project
would query its database here; this keeps the example runnable without one.
"""


class QuerySet:
    def __init__(self, rows):
        self.rows = list(rows)

    def filter(self, **fields):
        return QuerySet(
            row
            for row in self.rows
            if all(getattr(row, name) == value for name, value in fields.items())
        )

    def first(self):
        return self.rows[0] if self.rows else None


class Manager:
    def __init__(self, model):
        self.model = model
        self.rows = []

    def create(self, **fields):
        row = self.model(**fields)
        self.rows.append(row)
        return row

    def filter(self, **fields):
        return QuerySet(self.rows).filter(**fields)


class User:
    def __init__(self, id, username):
        self.id = id
        self.username = username


class Message:
    def __init__(self, receipt, message):
        self.receipt = receipt
        self.message = message


User.objects = Manager(User)
Message.objects = Manager(Message)

# The users the example knows about (the same as in chapter 3).
User.objects.create(id=1, username="Andrew")
User.objects.create(id=2, username="Victoria")
