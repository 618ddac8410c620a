"""``tailorline demo``: the whole loop on a synthetic manufacturer, with an HTML report."""
