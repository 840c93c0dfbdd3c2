from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from .models import Usuario


@admin.register(Usuario)
class UsuarioAdmin(UserAdmin):
    list_display = ("username", "email", "email_verified", "is_staff", "is_active", "date_joined")
    list_filter = (*UserAdmin.list_filter, "email_verified")
    ordering = ("id",)
    fieldsets = [
        *UserAdmin.fieldsets[:1],
        (UserAdmin.fieldsets[1][0], {"fields": (*UserAdmin.fieldsets[1][1]["fields"], "email_verified")}),
        *UserAdmin.fieldsets[2:],
    ]
