"""The daemon's side of the worker sockets (daemon process, event loop): routing over READY workers with a
bounded wait queue (``balancer``) and the client that sends one job to one worker, retrying once elsewhere
(``client``)."""
