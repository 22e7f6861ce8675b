/* config_file.c: to be written */
typedef int gcorn_config_file_placeholder;
