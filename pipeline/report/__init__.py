"""`newsbeam report`: one self-contained HTML page of what runs and streams wrote."""
