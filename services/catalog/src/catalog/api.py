"""Public routes of the catalog service (thin: parse, call service.py, shape the response)."""

from fastapi import APIRouter

router = APIRouter()
