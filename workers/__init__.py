"""The RQ edge: connections, queues, jobs and schedules. Jobs are thin calls into `mall`."""
