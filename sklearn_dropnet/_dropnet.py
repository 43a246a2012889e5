# Being written right now by the lead engineer; replaced within the hour.
class DropNetClassifier:  # placeholder so that the package imports
    pass
