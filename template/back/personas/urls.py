from django.urls import path

from . import accounts, views

urlpatterns = [
    path("auth/signup/", views.SignupView.as_view(), name="signup"),
    path("auth/login/", views.LoginView.as_view(), name="login"),
    path("auth/logout/", views.LogoutView.as_view(), name="logout"),
    path("auth/me/", views.MeView.as_view(), name="me"),
    path("auth/password/reset/", accounts.PasswordResetView.as_view(), name="password-reset"),
    path("auth/password/reset/confirm/", accounts.PasswordResetConfirmView.as_view(), name="password-reset-confirm"),
    path("auth/password/change/", accounts.PasswordChangeView.as_view(), name="password-change"),
    path("auth/email/verify/", accounts.VerifyEmailView.as_view(), name="email-verify"),
    path("auth/email/verify/resend/", accounts.ResendVerificationView.as_view(), name="email-verify-resend"),
    path("auth/email/change/", accounts.EmailChangeView.as_view(), name="email-change"),
    path("users/", views.UsuarioListView.as_view(), name="usuario-list"),
    path("users/<int:pk>/", views.UsuarioDetailView.as_view(), name="usuario-detail"),
]
