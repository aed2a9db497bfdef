"""The main job: from nothing to a report that answers the essays, as a resumable pipeline of stages."""
