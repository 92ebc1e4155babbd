"""The agent desktop: websockets for agents and supervisors, and the pages."""
