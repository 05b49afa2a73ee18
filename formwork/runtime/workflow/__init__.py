"""BPMN workflows on SpiffWorkflow: safe engine, versioned definitions, durable instances.

Modules: ``engine`` (safe script engine, state-only serializer), ``deploy`` (parse, check,
version, spec cache), ``service`` (instances and locked steps), ``compact`` (a flat tree for
looping processes), ``tasks`` (projection and inbox), ``actions`` (approval actions),
``binding`` (records and platform services), ``guard`` (records in approval), ``views``
(what the API shows), ``timers``, ``jobs`` and ``worker`` (background work), ``migrate``
(moving instances between versions).
"""
