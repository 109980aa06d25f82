"""The Celery worker's consumer, with one fix: a queue given back after a drain stays
selected when the worker reconnects to the broker.

Celery 5.6's cancel_consumer deselects the queue (app.amqp.queues.consume_from) and stops
consuming it; add_consumer starts consuming it again but, for a queue the worker already
knows, does not select it again. At the next broker reconnect (a Redis failover, a broker
restart) the worker rebuilds its consumer from the selection and consumes nothing: its
tasks stay queued until the worker is restarted. A drain that is undone (remove_worker.py
when the drain times out) is exactly cancel_consumer then add_consumer.

The Celery settings module (airflow_celery_config.py) names this class: worker_consumer.
"""

from celery.worker.consumer import Consumer as CeleryConsumer


class Consumer(CeleryConsumer):  # type: ignore[misc]
    def add_task_queue(self, queue: str, *args: object, **kwargs: object) -> None:
        queues = self.app.amqp.queues
        if queue in queues and queue not in queues.consume_from:
            queues.select_add(queues[queue])
        super().add_task_queue(queue, *args, **kwargs)
