// placeholder: the web client is built on branch r13-webui
