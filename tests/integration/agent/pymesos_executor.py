"""A custom executor written against the unmodified PyPI pymesos ``MesosExecutorDriver``, as a framework ships one.

Runs every task it is given until told otherwise: TASK_RUNNING at launch, TASK_KILLED on KILL. A framework message
``ping`` is answered ``pong:ping`` and finishes the task named ``finish-on-message``.
"""

import threading
import time

from addict import Dict
from pymesos import Executor, MesosExecutorDriver, decode_data, encode_data


class Echo(Executor):
    def launchTask(self, driver, task):  # noqa: N802 - pymesos' callback names
        def run():
            driver.sendStatusUpdate(Dict(task_id=task.task_id, state="TASK_RUNNING", timestamp=time.time()))

        threading.Thread(target=run, daemon=True).start()

    def killTask(self, driver, task_id):  # noqa: N802
        driver.sendStatusUpdate(Dict(task_id=task_id, state="TASK_KILLED", message="killed by the executor"))

    def frameworkMessage(self, driver, message):  # noqa: N802
        data = decode_data(message)
        driver.sendFrameworkMessage(encode_data(b"pong:" + data))
        driver.sendStatusUpdate(Dict(task_id={"value": "finish-on-message"}, state="TASK_FINISHED"))


if __name__ == "__main__":
    MesosExecutorDriver(Echo(), use_addict=True).run()
