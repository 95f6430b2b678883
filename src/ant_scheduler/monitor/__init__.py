"""GPU and host monitoring: backends that report what each GPU is and how busy it is."""
