"""The request a view gets once IsAuthenticated has let it through: its user
is a Usuario and its auth the knox token it came with. For annotations only;
DRF's Request is what arrives."""

from knox.models import AuthToken
from rest_framework.request import Request

from .models import Usuario


class AuthenticatedRequest(Request):
    user: Usuario
    auth: AuthToken
