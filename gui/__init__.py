"""TransferLab's Qt front end: presents core/ and forwards user actions to it."""
