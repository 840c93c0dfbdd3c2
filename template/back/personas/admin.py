from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from .models import Usuario


@admin.register(Usuario)
class UsuarioAdmin(UserAdmin[Usuario]):
    list_display = ("username", "email", "email_verified", "is_staff", "is_active", "date_joined")
    list_filter = (*UserAdmin.list_filter, "email_verified")
    ordering = ("id",)
    # UserAdmin's, with email_verified next to the address.
    fieldsets = [
        (name, {**options, "fields": (*options["fields"], "email_verified")})
        if "email" in options["fields"] else (name, options)
        for name, options in UserAdmin.fieldsets or ()
    ]
