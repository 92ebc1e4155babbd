"""The floor process's shell: what agents, supervisors and operators use.

`floor.Floor` composes the floor's half on an event bus and a `CallControl`
(control.py): the records writer (records/writer.py), the call metrics
(metrics/), the desktop and the administration (agent/), served over HTTP by
`web.py`; `floor.floor_main` is the floor process's root, fed by the call
process over the link (link.py). The floor's half imports nothing of the call
process's shell, nor the SIP core or the switchboard (.importlinter).
"""
