"""Faust workers. Each subpackage registers its agents on an app built by ``workers.app.create_app``."""
