"""The engine: the run loop's state machine, the job context it runs in, and :func:`run`.

It composes the layers below it (skills, model clients, storage, configuration) and is the only
package that knows all of them.
"""
