/* settings.c: to be written */
typedef int gcorn_settings_placeholder;
