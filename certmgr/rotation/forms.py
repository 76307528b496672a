from __future__ import annotations

from django import forms

from ..core import csr


class NewKeyForm(forms.Form):
    key_type = forms.ChoiceField(
        choices=list(csr.KEY_TYPES.items()), initial=csr.DEFAULT_KEY_TYPE, label="Key type"
    )
    subject = forms.CharField(
        max_length=csr.MAX_SUBJECT_LENGTH,
        label="CSR subject (RFC 4514)",
        help_text="Proposed: the subject DN of the certificate in use. Keep it: IAS may take up to 24 h "
        "to replicate a changed subject DN (not documented by SAP).",
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off", "size": 60}),
    )

    def clean_subject(self) -> str:
        try:
            return csr.parse_subject(self.cleaned_data["subject"]).rfc4514_string()
        except csr.SubjectError as exc:
            raise forms.ValidationError(str(exc)) from None
