"""cwl_filter against the examples of the AWS CloudWatch Logs User Guide, "Filter and pattern
syntax" (FilterAndPatternSyntax): each example's log event, pattern, and whether the guide says
it matches. Sections: "Matching terms in JSON log events" and "Using compound expressions to
match terms in JSON objects"; from the page's earlier edition, "JSON Metric Filter Examples"
(which adds "ThisFlag": true and IS TRUE), "JSON Compound Conditions" (unquoted nonmatch),
"JSON Special Considerations" (a selector on an array) and "Numeric Comparisons"."""
import json

import pytest

from cwl_filter import UnsupportedPattern, compile_pattern, matches

# "Example: JSON log event" (with the earlier edition's "ThisFlag": true), one line as the guide
# says a tested event must be.
TRAIL_EVENT = json.dumps({
    "eventType": "UpdateTrail",
    "sourceIPAddress": "111.111.111.111",
    "arrayKey": ["value", "another value"],
    "objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}],
    "SomeObject": None,
    "ThisFlag": True,
})

# "Example: JSON object" of the compound expressions.
USERS_EVENT = json.dumps({
    "user": {"id": 1, "email": "John.Stiles@example.com"},
    "users": [{"id": 2, "email": "John.Doe@example.com"}, {"id": 3, "email": "Jane.Doe@example.com"}],
    "actions": ["GET", "PUT", "DELETE"],
    "coordinates": [[0, 1, 2], [4, 5, 6], [7, 8, 9]],
})

GUIDE_EXAMPLES = [
    # Matching terms in JSON log events: every one matches the event.
    (TRAIL_EVENT, '{ $.eventType = "UpdateTrail" }', True),
    (TRAIL_EVENT, "{ $.sourceIPAddress != 123.123.* }", True),
    (TRAIL_EVENT, '{ $.arrayKey[0] = "value" }', True),
    (TRAIL_EVENT, "{ $.objectList[1].id = 2 }", True),
    (TRAIL_EVENT, "{ $.SomeObject IS NULL }", True),
    (TRAIL_EVENT, "{ $.SomeOtherObject NOT EXISTS }", True),
    (TRAIL_EVENT, "{ $.ThisFlag IS TRUE }", True),
    # Compound expressions, current edition (quoted "nonmatch").
    (USERS_EVENT, '{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }', True),
    (USERS_EVENT, '{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = "nonmatch" && $.actions[2] = "nonmatch" }', True),
    (USERS_EVENT, '{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = "nonmatch") && $.actions[2] = "nonmatch" }', False),
    (USERS_EVENT, '{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }', False),
    # Compound conditions, earlier edition (unquoted words).
    (USERS_EVENT, '{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch && $.actions[2] = nomatch }', True),
    (USERS_EVENT, '{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch) && $.actions[2] = nomatch }', False),
    # JSON Special Considerations: a selector on an array fails = and != alike.
    ('{"users": [1, 2, 3]}', "{$.users = 1}", False),
    ('{"users": [1, 2, 3]}', "{$.users != 1}", False),
]


@pytest.mark.parametrize("event, pattern, expected", GUIDE_EXAMPLES)
def test_the_guides_examples(event, pattern, expected):
    assert matches(pattern, event) is expected


# "Numeric Comparisons" and "Example: Metric filters that match numeric values": the guide gives
# the patterns; each is checked on an event just inside and one just outside it.
NUMERIC = [
    ("{ $.latency >= 500 }", {"latency": 500}, {"latency": 499.9}),
    ("{ $.numbers[0] < 10e3 }", {"numbers": [9999]}, {"numbers": [10000]}),
    ("{ $.numbers[0] < 10e-3 }", {"numbers": [0.009]}, {"numbers": [0.01]}),
    ("{ $.processes[4].averageRuntime <= 55.5 }", {"processes": [{}, {}, {}, {}, {"averageRuntime": 55.5}]},
     {"processes": [{}, {}, {}, {}, {"averageRuntime": 55.6}]}),
    ("{ $.errorCode = 400}", {"errorCode": 400}, {"errorCode": 401}),
    ("{ $.errorCode != 500 }", {"errorCode": 400}, {"errorCode": 500}),
    ("{ $.latency > +1000 }", {"latency": 1001}, {"latency": 1000}),
    ("{ $.bandwidth > 75 }", {"bandwidth": 76}, {"bandwidth": 75}),
    ("{ $.number[0] = 1e-3 }", {"number": [0.001]}, {"number": [0.01]}),
    ("{ $.number[0] != 1e+3 }", {"number": [999]}, {"number": [1000]}),
]


@pytest.mark.parametrize("pattern, inside, outside", NUMERIC)
def test_numeric_comparisons(pattern, inside, outside):
    assert matches(pattern, json.dumps(inside))
    assert not matches(pattern, json.dumps(outside))


def test_wildcards_at_either_end_only():
    """The earlier edition: *Event matches PutEvent and GetEvent, Event* matches EventId and
    EventName, Ev*ent only the string Ev*ent."""
    for name in ("PutEvent", "GetEvent"):
        assert matches("{ $.n = *Event }", json.dumps({"n": name}))
    for name in ("EventId", "EventName"):
        assert matches("{ $.n = Event* }", json.dumps({"n": name}))
    assert matches("{ $.n = Ev*ent }", json.dumps({"n": "Ev*ent"}))
    assert not matches("{ $.n = Ev*ent }", json.dumps({"n": "Event"}))
    assert matches('{ $.n = "*" }', json.dumps({"n": ""}))
    assert not matches('{ $.n = "*" }', json.dumps({"n": None}))  # null is no string


def test_is_compares_json_literals_only():
    assert matches("{ $.f IS FALSE }", '{"f": false}')
    assert not matches("{ $.f IS TRUE }", '{"f": "true"}')  # a string is not a boolean
    assert not matches("{ $.f IS TRUE }", '{"f": 1}')
    assert not matches("{ $.f IS NULL }", "{}")  # missing is not null
    assert not matches("{ $.f NOT EXISTS }", '{"f": null}')


def test_only_one_json_object_per_event_matches():
    """What the awslogs driver ships is the line as written: text before the `{` (a plain-text
    prefix, a timestamp) or a plain-text line matches no JSON pattern."""
    record = '{"event": "run_finished"}'
    assert matches('{ $.event = "run_finished" }', record)
    assert not matches('{ $.event = "run_finished" }', "2026-12-02T20:00:00Z " + record)
    assert not matches('{ $.event = "run_finished" }', "2026-12-02T20:00:00Z INFO run_finished event=run_finished")
    assert not matches('{ $.event = "run_finished" }', '["run_finished"]')


@pytest.mark.parametrize("pattern", [
    "ERROR", '"INTERNAL SERVER ERROR"', "[ip, user, username, timestamp, request, status_code = 4*, bytes]",
    "{ $.['cluster.name'] = \"c\" }", "{ $.a IS NOT NULL }", "{ $.a EXISTS }", "{ $.a = true }",
    "{ $.a > big }", "{ $.a = %bind: address% }", "{ $.a = 1 && }", "{ ($.a = 1 }", "{ $.a = 1 } trailing", "{ a = 1 }",
])
def test_anything_else_is_refused_loudly(pattern):
    with pytest.raises(UnsupportedPattern):
        compile_pattern(pattern)
