"""Enrolment protocols (ACME, later SCEP and EST): the middle layer between the HTTP edge and
the application services. Each protocol package declares the narrow interfaces it needs and
never imports another protocol package or a web framework."""
